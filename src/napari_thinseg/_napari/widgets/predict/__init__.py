"""Step 4, predict: a photo, folders and whole slides, and the model
choice and output they share."""
