"""The web shell: blueprint registration, the request's commit point and error pages (setup), the acting user of a
request (context), the security headers of every response (security_headers), and the public pages (public).
Each domain keeps its own views."""
