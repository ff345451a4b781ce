"""`quantbot demo`: a scripted market on the local Solana node, narrated while the daemon trades it in paper mode."""
