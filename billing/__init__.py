"""Billing: the four tiers, their limits and quotas, and the rate limiter that meters requests.

Library code the API wires in; it imports only `schemas`, never the API, the workers or the
command line.
"""
