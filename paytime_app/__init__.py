"""PayTime: money between friends, event ticketing, a payments dashboard and prepaid calls."""

__version__ = "0.1.0"
