"""Step 6, export and measure: modal composition, regions, point
counts, the dataset export."""
