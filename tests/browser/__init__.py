"""End-to-end tests in headless Chromium (Playwright) against the app served for real."""
