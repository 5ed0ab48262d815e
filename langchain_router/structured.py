"""Structured output for ``ZeroRouterChat``: tool calling, ``json_schema`` or ``json_mode`` plus a parser."""

from __future__ import annotations

from operator import itemgetter
from typing import Any, Literal

from langchain_core.language_models import LanguageModelInput
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.output_parsers.openai_tools import JsonOutputKeyToolsParser, PydanticToolsParser
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel

__all__ = ["structured_output"]


def structured_output(
    chat: Any,
    schema: dict[str, Any] | type | None,
    *,
    method: Literal["function_calling", "json_schema", "json_mode"],
    include_raw: bool,
    strict: bool | None,
) -> Runnable[LanguageModelInput, dict | BaseModel]:
    """The runnable behind :meth:`ZeroRouterChat.with_structured_output` (``chat`` binds the request)."""
    if schema is None and method != "json_mode":
        raise ValueError(f"schema is required for method={method!r}")
    is_pydantic = isinstance(schema, type) and is_basemodel_subclass(schema)
    fmt_kwargs = {"method": method, "strict": strict}
    if method == "function_calling":
        tool_name = convert_to_openai_tool(schema)["function"]["name"]
        llm = chat.bind_tools(
            [schema],
            tool_choice=tool_name,
            strict=strict,
            ls_structured_output_format={"kwargs": fmt_kwargs, "schema": schema},
        )
        parser: Runnable = (
            PydanticToolsParser(tools=[schema], first_tool_only=True)
            if is_pydantic
            else JsonOutputKeyToolsParser(key_name=tool_name, first_tool_only=True)
        )
    elif method == "json_schema":
        fn = convert_to_openai_tool(schema, strict=strict)["function"]
        json_schema: dict[str, Any] = {"name": fn["name"], "schema": fn.get("parameters") or {}}
        if fn.get("description"):
            json_schema["description"] = fn["description"]
        if strict is not None:
            json_schema["strict"] = strict
        llm = chat.bind(
            response_format={"type": "json_schema", "json_schema": json_schema},
            ls_structured_output_format={"kwargs": fmt_kwargs, "schema": schema},
        )
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    elif method == "json_mode":
        llm = chat.bind(
            response_format={"type": "json_object"},
            ls_structured_output_format={"kwargs": {"method": method}, "schema": schema},
        )
        parser = PydanticOutputParser(pydantic_object=schema) if is_pydantic else JsonOutputParser()
    else:
        raise ValueError(f"method={method!r}; expected 'function_calling', 'json_schema' or 'json_mode'")
    if not include_raw:
        return llm | parser
    parser_assign = RunnablePassthrough.assign(
        parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
    )
    parser_none = RunnablePassthrough.assign(parsed=lambda _: None)
    with_fallback = parser_assign.with_fallbacks([parser_none], exception_key="parsing_error")
    return RunnableMap(raw=llm) | with_fallback
