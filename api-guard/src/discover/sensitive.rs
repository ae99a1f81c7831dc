//! Sensitive data classes in request and response text (email, phone, payment card with Luhn, national ids, API keys and secrets, private keys, JWTs): classes and counts only, never the values.
