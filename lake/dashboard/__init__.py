"""The lake's dashboard: QuickSight as code over the views, and the same visuals as a local page."""
