"""Step 3, train: the dock, its form, budget, defaults, choices and plots."""
