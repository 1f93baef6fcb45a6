"""Signing in with OAuth 2.0: token requests (RFC 6749), access tokens cached in memory and
refreshed, SASL XOAUTH2/OAUTHBEARER, the device-code and loopback sign-in flows, provider presets.

Plain Python (standard library HTTP), no Dagster.
"""
