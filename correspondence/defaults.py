"""The emails the processes send, as shipped. Staff may edit them (Template rows); a template
that is missing from the database falls back to its text here."""

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "welcome": {
        "subject": "Welcome to Ensemble, {{ first_name }}",
        "body": (
            "Hello {{ first_name }},\n"
            "\n"
            "Thank you for registering with Ensemble. Your account is ready, and from now on\n"
            "we will keep you informed about your orders.\n"
            "\n"
            "The Ensemble team\n"
        ),
    },
    "receipt": {
        "subject": "Your receipt for order {{ order_ref }}",
        "body": (
            "Hello{% if first_name %} {{ first_name }}{% endif %},\n"
            "\n"
            "Thank you for your order {{ order_ref }}.\n"
            "\n"
            "Total: {{ total }} {{ currency }}\n"
            "\n"
            "The Ensemble team\n"
        ),
    },
}
