"""The web pages people log into (server-rendered) and their logins."""
