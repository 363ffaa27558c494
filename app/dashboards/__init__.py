"""Figures for the province and ministry dashboards, and a plan's Excel exports."""
