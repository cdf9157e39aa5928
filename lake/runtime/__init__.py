"""Local event-source-mapping runtime: AWS Lambda's stream polling semantics, in process."""

from lake.runtime.invoke import LambdaContext
from lake.runtime.runtime import EventSourceMapping, LocalRuntime, MappingStats

__all__ = ["EventSourceMapping", "LambdaContext", "LocalRuntime", "MappingStats"]
