"""History stores: one interface (`Store`), a local and a Supabase implementation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import RecordQuery, Store, media_key

if TYPE_CHECKING:
    from ..config import Settings

__all__ = ["RecordQuery", "Store", "build_store", "media_key"]


def build_store(settings: Settings) -> Store:
    """The store the settings choose: local by default, Supabase when SUPABASE_URL is set."""
    if settings.store_kind == "supabase":
        settings.validate()
        from ..config import make_data_dir
        from ..provenance import installation_secret
        from .supabase import SupabaseStore

        assert settings.supabase_url is not None and settings.supabase_key is not None
        make_data_dir(settings.data_dir)  # its installation.key decides which records are ours to send
        return SupabaseStore(
            settings.supabase_url,
            settings.supabase_key.reveal(),
            email=settings.supabase_email,
            password=settings.supabase_password.reveal() if settings.supabase_password else None,
            access_token=settings.supabase_access_token.reveal() if settings.supabase_access_token else None,
            installation_secret=installation_secret(settings.data_dir),
        )
    from .local import LocalStore

    return LocalStore(settings.data_dir)
