"""Localized text of the message that carries a code (fr and en)."""

from __future__ import annotations

_TEMPLATES = {
    "en": "Your verification code is {code}. It expires in {minutes} minutes. Never share it.",
    "fr": "Votre code de vérification est {code}. Il expire dans {minutes} minutes. Ne le partagez jamais.",
}
DEFAULT_LOCALE = "en"


def supported(locale: str) -> str | None:
    """`fr-CD` -> `fr`; None when the language is not one we write."""
    language = locale.strip().lower().replace("_", "-").split("-", 1)[0]
    return language if language in _TEMPLATES else None


def code_message(code: str, locale: str | None, ttl_seconds: int) -> str:
    language = supported(locale or "") or DEFAULT_LOCALE
    return _TEMPLATES[language].format(code=code, minutes=max(1, ttl_seconds // 60))
