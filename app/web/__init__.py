"""The web shell: blueprint registration, the request's commit point and error pages (setup), the acting user of a
request (context), and the public pages (public). Each domain keeps its own views."""
