"""Scoring of weather forecasts: metrics, day-1 gate, ERA5 scores, roll-up (SCORING.md)."""
