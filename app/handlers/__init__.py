"""Service-task handlers, each named after the BPMN operation it serves (app.handlers.registry lists them; the app
registers them when it is created)."""
