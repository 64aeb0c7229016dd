"""The Kopf operator: validate -> render -> apply."""
