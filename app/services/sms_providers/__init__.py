"""Adapters for real SMS providers; each one implements app.services.sms.SmsBackend."""
