"""Step 2, correct: where to correct next after a prediction."""
