"""quantbot.analytics against values worked out by hand, plus properties that hold for any input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from quantbot import analytics as qa

# equity 100 -> 110 -> 99 -> 108.9: returns +10%, -10%, +10%
EQUITY = [100.0, 110.0, 99.0, 108.9]


def test_returns_are_simple_per_period_changes() -> None:
    # 110/100-1 = 0.1; 99/110-1 = -0.1; 108.9/99-1 = 0.1
    assert qa.returns_from_equity(EQUITY) == pytest.approx([0.1, -0.1, 0.1])
    assert qa.returns_from_equity([5.0]).size == 0


def test_total_and_percentage_return() -> None:
    # 108.9 - 100 = 8.9; 108.9 / 100 - 1 = 0.089
    assert qa.total_return(EQUITY) == pytest.approx(8.9)
    assert qa.pct_return(EQUITY) == pytest.approx(0.089)


def test_volatility_is_sample_std_scaled_by_sqrt_periods() -> None:
    # mean 1/30; deviations 1/15, -2/15, 1/15; squares sum 6/225 = 0.02667; / (n-1=2) = 0.01333; sqrt = 0.11547
    assert qa.volatility([0.1, -0.1, 0.1]) == pytest.approx(0.2 / math.sqrt(3))
    # annualised with 4 periods per year: x sqrt(4) = x2
    assert qa.volatility([0.1, -0.1, 0.1], periods_per_year=4) == pytest.approx(0.4 / math.sqrt(3))


def test_sharpe_is_mean_over_sample_std() -> None:
    # (1/30) / (0.2/sqrt3) = sqrt3/6 = 0.288675
    r = qa.returns_from_equity(EQUITY)
    assert qa.sharpe(r) == pytest.approx(math.sqrt(3) / 6)
    assert qa.sharpe(r, periods_per_year=4) == pytest.approx(math.sqrt(3) / 3)
    # risk-free 0.1 per period: excess returns 0, -0.2, 0; mean -1/15; std = same spread (0.2/sqrt3) -> -sqrt3/3
    assert qa.sharpe(r, risk_free=0.1) == pytest.approx(-math.sqrt(3) / 3)


def test_sortino_divides_by_downside_deviation() -> None:
    # shortfalls below 0: 0, -0.1, 0; sum of squares 0.01; / (n-1=2) = 0.005; sqrt = 0.1/sqrt2
    # (1/30) / (0.1/sqrt2) = sqrt2/3 = 0.471405
    assert qa.sortino([0.1, -0.1, 0.1]) == pytest.approx(math.sqrt(2) / 3)


def test_undefined_ratios_are_nan() -> None:
    assert math.isnan(qa.sharpe([0.05]))
    assert math.isnan(qa.sharpe([0.01, 0.01, 0.01]))  # zero deviation
    assert math.isnan(qa.sortino([0.01, 0.02]))  # no period below target
    assert math.isnan(qa.win_rate([]))


def test_max_drawdown_is_fraction_of_running_peak_with_indices() -> None:
    # peaks 100,120,120,130,130,130; drawdowns 0, 0, 30/120=0.25, 0, 65/130=0.5, 50/130=0.3846
    equity = [100.0, 120.0, 90.0, 130.0, 65.0, 80.0]
    assert qa.drawdown_series(equity) == pytest.approx([0, 0, 0.25, 0, 0.5, 50 / 130])
    assert qa.max_drawdown(equity) == qa.Drawdown(depth=0.5, peak_index=3, trough_index=4)
    assert qa.max_drawdown(EQUITY) == qa.Drawdown(depth=pytest.approx(0.1), peak_index=1, trough_index=2)
    assert qa.max_drawdown([1.0, 2.0, 3.0]) == qa.Drawdown(0.0, 0, 0)


def test_drawdown_refuses_negative_equity() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        qa.max_drawdown([10.0, -1.0])


def test_round_trip_statistics() -> None:
    # wins 10, 20; losses -5, -15; one flat trade: win rate 2/5 = 0.4; avg win 15; avg loss -10
    # gross profit 30, gross loss -20, profit factor 30/20 = 1.5
    stats = qa.round_trips([10.0, -5.0, 0.0, 20.0, -15.0])
    assert stats == qa.RoundTrips(
        count=5,
        wins=2,
        losses=2,
        win_rate=0.4,
        average_win=15.0,
        average_loss=-10.0,
        gross_profit=30.0,
        gross_loss=-20.0,
        profit_factor=1.5,
    )


def test_exposure_and_time_in_market() -> None:
    # |0|/100 = 0; 50/100 = 0.5; |-100|/200 = 0.5; two of three periods hold a position
    assert qa.exposure([0.0, 50.0, -100.0], [100.0, 100.0, 200.0]) == pytest.approx([0.0, 0.5, 0.5])
    assert qa.time_in_market([0.0, 50.0, -100.0]) == pytest.approx(2 / 3)


def test_trade_count_and_average_size() -> None:
    # sizes 10, -30, 20: 3 trades, mean |size| = 60/3 = 20
    assert qa.trade_count([10.0, -30.0, 20.0]) == 3
    assert qa.average_trade_size([10.0, -30.0, 20.0]) == pytest.approx(20.0)


def test_vwap_weights_prices_by_volume() -> None:
    # (1*1 + 3*1 + 2*2) / 4 = 8/4 = 2
    assert qa.vwap([1.0, 3.0, 2.0], [1.0, 1.0, 2.0]) == pytest.approx(2.0)
    assert math.isnan(qa.vwap([1.0], [0.0]))


def test_candles_bucket_trades_into_ohlcv_bars() -> None:
    # 60 s bars: [0,60): 1,3,2 vol 4 vwap (1+3+4)/4=2; [60,120): 4 vol 1; [120,180): 5,4.5 vol 4 vwap (10+9)/4
    bars = qa.candles([0, 30, 59, 60, 125, 130], [1, 3, 2, 4, 5, 4.5], [1, 1, 2, 1, 2, 2], interval=60)
    assert len(bars) == 3
    assert bars.start.tolist() == [0, 60, 120]
    assert bars.open.tolist() == [1, 4, 5]
    assert bars.high.tolist() == [3, 4, 5]
    assert bars.low.tolist() == [1, 4, 4.5]
    assert bars.close.tolist() == [2, 4, 4.5]
    assert bars.volume.tolist() == [4, 1, 4]
    assert bars.vwap.tolist() == pytest.approx([2.0, 4.0, 4.75])


def test_candles_order_trades_by_time() -> None:
    bars = qa.candles([10, 0], [2.0, 1.0], [1.0, 1.0], interval=60)
    assert (bars.open[0], bars.close[0]) == (1.0, 2.0)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="nan or inf"):
        qa.sharpe([0.1, float("nan")])
    with pytest.raises(ValueError, match="differ in length"):
        qa.vwap([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="interval"):
        qa.candles([0], [1], [1], interval=0)


positive = st.floats(min_value=1e-3, max_value=1e9, allow_nan=False, allow_infinity=False)
small = st.floats(min_value=-0.5, max_value=0.5, allow_nan=False, allow_infinity=False)


@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=60))
def test_drawdown_is_always_between_zero_and_one(equity: list[float]) -> None:
    dd = qa.max_drawdown(equity)
    assert 0.0 <= dd.depth <= 1.0
    assert dd.peak_index <= dd.trough_index < len(equity)
    assert np.all((qa.drawdown_series(equity) >= 0) & (qa.drawdown_series(equity) <= 1))


@given(st.lists(small, min_size=2, max_size=60))
def test_sharpe_sign_follows_mean_return(returns: list[float]) -> None:
    s = qa.sharpe(returns)
    if math.isnan(s):
        assert np.std(returns, ddof=1) == 0
        return
    assert np.sign(s) == np.sign(np.mean(returns))


@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=1e6), positive, st.floats(min_value=0, max_value=1e6)),
        min_size=1,
        max_size=80,
    ),
    st.sampled_from([1.0, 60.0, 300.0]),
)
@example([(0.0, 2.5, 5e-324)], 1.0)  # a subnormal volume: p * v alone rounds the VWAP to 2.0
def test_candles_high_low_bound_open_close_and_keep_volume(
    trades: list[tuple[float, float, float]], interval: float
) -> None:
    t, p, v = (np.array(col) for col in zip(*trades, strict=True))
    bars = qa.candles(t, p, v, interval=interval)
    assert np.all(bars.high >= np.maximum(bars.open, bars.close))
    assert np.all(np.minimum(bars.open, bars.close) >= bars.low)
    assert np.all(np.diff(bars.start) > 0)
    assert float(bars.volume.sum()) == pytest.approx(float(v.sum()))
    traded = ~np.isnan(bars.vwap)
    assert np.all(bars.vwap[traded] <= bars.high[traded] * (1 + 1e-9))
    assert np.all(bars.vwap[traded] >= bars.low[traded] * (1 - 1e-9))
