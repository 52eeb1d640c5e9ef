"""Shared library of the send_otp, verify_otp and login Cloud Functions."""
