"""Step 1, auto-label: the dock, its form, the histogram and
hue-saturation views, the epoxy click."""
