"""Adapters for real SMS providers; each one implements app.sms.services.SmsBackend."""
