"""JSON parsing that answers every malformed body with VALIDATION_ERROR."""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Deeply nested arrays blow Python's recursion limit inside json.loads; that is a
            # malformed request, not a server error.
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
