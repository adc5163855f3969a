"""A Faker provider for voice callbacks: ``fake.add_provider(VoiceCallbackProvider)``.

Then ``fake.voiceprompt_callback()``, ``fake.voicecode_callback()``, ``fake.voicekey_callback()``,
``fake.voice_failure_callback()`` and ``fake.voice_callback()`` (any kind) build the same payloads as
``PayloadFactory``, with the same overrides (``MISSING`` removes a field). factory_boy works the same
way: ``factory.Faker.add_provider(VoiceCallbackProvider)``, then
``payload = factory.Faker("voiceprompt_callback", result="1")``.

The payloads are drawn from the Faker generator's own random stream, as every Faker provider's are, so
``Faker.seed()``, ``fake.seed_instance()``, Faker's pytest fixture, pytest-randomly's reseeding and
``factory.random.reseed_random()`` all govern them, interleaved with whatever else the test fakes.
Building costs what ``PayloadFactory`` costs: no Faker provider is called per field. Faker's own
knowledge is used where the factory has none: ``nationcode="locale"`` takes the country of the Faker
instance's locale (``Faker("ja_JP")`` -> ``"81"``).
"""

from __future__ import annotations

import random
from typing import Any

import faker
from faker.providers import BaseProvider

from pytest_voicecb.contract import registered_kinds
from pytest_voicecb.factory import NATIONCODES, PayloadFactory
from pytest_voicecb.integrations._versions import require

__all__ = ["LOCALE", "VoiceCallbackProvider"]

require("Faker", getattr(faker, "VERSION", ""), (4, 0), "faker", "the per-instance random of Generator.random")

LOCALE = "locale"
"""Pass as ``nationcode`` to take the country calling code of the Faker instance's locale."""

# The country part of a Faker locale (``zh_CN`` -> ``CN``) to its calling code, for the countries the
# factory has numbering plans for; a locale of another country gets a clear error instead of digits.
_CALLING_CODES: dict[str, str] = {"CN": "86", "HK": "852", "US": "1", "CA": "1", "SG": "65", "GB": "44"}
_CALLING_CODES |= {"JP": "81", "IN": "91"}
assert set(_CALLING_CODES.values()) <= set(NATIONCODES)


class _DrawnFrom(PayloadFactory):
    """A ``PayloadFactory`` drawing from a random stream it does not own (the Faker generator's)."""

    def __init__(self, stream: random.Random) -> None:  # no super().__init__: it would seed a stream of its own
        self.seed = "the Faker generator's random"
        self.random = stream
        self._rnd = stream.random
        self._bits = stream.getrandbits


class VoiceCallbackProvider(BaseProvider):
    """Voice-notification callbacks as Faker data. Each method takes ``PayloadFactory``'s overrides."""

    _factory: _DrawnFrom | None = None

    def voiceprompt_callback(self, **overrides: Any) -> dict[str, Any]:
        """A ``voiceprompt_callback`` envelope: an answered call unless ``result`` says otherwise."""
        return self._payloads(overrides).prompt(**overrides)

    def voicecode_callback(self, **overrides: Any) -> dict[str, Any]:
        """A ``voicecode_callback`` envelope (a voice verification code)."""
        return self._payloads(overrides).code(**overrides)

    def voicekey_callback(self, **overrides: Any) -> dict[str, Any]:
        """A ``voicekey_callback`` envelope: the callee pressed a key."""
        return self._payloads(overrides).keypress(**overrides)

    def voice_failure_callback(self, **overrides: Any) -> dict[str, Any]:
        """A ``voice_failure_callback`` envelope: why a call failed."""
        return self._payloads(overrides).failure(**overrides)

    def voice_callback(self, kind: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A callback of ``kind`` (a short or full name), or of any registered kind, equally often.

        The overrides are applied to whichever kind is drawn; a field that kind lacks is added to it
        (unknown fields are legal), so pass only shared fields (``callid``, ``mobile`` ...) without ``kind``.
        """
        payloads = self._payloads(overrides)
        if kind is None:
            kinds = registered_kinds()
            kind = kinds[int(payloads.random.random() * len(kinds))].key
        return payloads.build(kind, **overrides)

    # -- not Faker methods: Faker exposes every public method, so these are private -----------------

    def _payloads(self, overrides: dict[str, Any]) -> _DrawnFrom:
        """The factory bound to the generator's current random (``seed_instance`` replaces it)."""
        stream = self.generator.random
        factory = self._factory
        if factory is None or factory.random is not stream:
            factory = self._factory = _DrawnFrom(stream)
        if overrides and overrides.get("nationcode") == LOCALE:
            overrides["nationcode"] = self._locale_nationcode()
        return factory

    def _locale_nationcode(self) -> str:
        """The calling code of the country of this generator's phone numbers (Faker's locale for them)."""
        locale = next(
            (
                getattr(provider, "__lang__", None)
                for provider in self.generator.providers
                if getattr(provider, "__provider__", None) == "faker.providers.phone_number"
            ),
            None,
        )
        code = _CALLING_CODES.get((locale or "").rpartition("_")[2].upper())
        if code is None:
            known = ", ".join(sorted(_CALLING_CODES))
            raise ValueError(
                f'nationcode="locale": the Faker locale {locale!r} is not of a country the factory has mobile '
                f"numbering plans for ({known}); pass a nationcode such as nationcode={NATIONCODES[0]!r}"
            )
        return code
