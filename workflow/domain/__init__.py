"""Pure rules and the lifecycle: imports states and the stdlib only."""
