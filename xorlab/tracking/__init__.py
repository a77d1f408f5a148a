"""Tracking: stores and their state (catalog), maintenance (check, clean), and the MLflow export."""
