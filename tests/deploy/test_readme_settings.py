"""The README documents every setting of the gateway, the classifier and the trainer (their
tables under "The trainer" and "Configuration (environment)"), so a new limit is never
invisible."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from shared.settings import ClassifierSettings, GatewaySettings, ServiceSettings, TrainerSettings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def env_names(settings: type[BaseSettings], field: str) -> list[str]:
    alias = settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"{settings.model_config.get('env_prefix', '')}{field}".upper()]


@pytest.mark.parametrize("settings", [GatewaySettings, ClassifierSettings, TrainerSettings,
                                      ServiceSettings], ids=lambda s: s.__name__)
def test_every_setting_is_in_the_readme(settings: type[BaseSettings]) -> None:
    own = [f for f in settings.model_fields
           if settings is ServiceSettings or f not in ServiceSettings.model_fields]
    missing = [env_names(settings, f)[0] for f in own
               if not any(f"`{name}`" in README for name in env_names(settings, f))]
    assert not missing, f"document these in README.md: {missing}"
