"""Data stage: sources (procedural, LPC, your own folder) -> prepare -> build -> dataset in memory."""
