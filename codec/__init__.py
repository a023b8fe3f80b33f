"""How payloads cross into Temporal: the JSON contract (pydantic) and, around it, encryption."""

from codec.converter import connect_temporal, data_converter, default_codec

__all__ = ["connect_temporal", "data_converter", "default_codec"]
