"""Plotly figure builders (pure functions of plain data, testable without a browser)."""
