"""Point-in-time restore: a planner (what each item was at time T) and an executor (writing it)."""
