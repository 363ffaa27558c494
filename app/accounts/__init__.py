"""Accounts and registration: users and roles, school registration, school accounts kept by provinces, staff
accounts, login and password pages."""
