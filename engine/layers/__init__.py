"""Building blocks of the ATFT-GAT-FAN model and the per-day loss machinery."""
