"""Tables and figures built from the cells' stored outputs (never by recomputing)."""
