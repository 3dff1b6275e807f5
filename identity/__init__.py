"""Identity and access: credentials, one-time codes, secrets kept outside the log, tokens.

Pure domain code shared by the API (verifying tokens and credentials) and the command handlers
(deciding against current state); it imports none of them.
"""
