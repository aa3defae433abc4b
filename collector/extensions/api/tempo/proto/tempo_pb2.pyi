from opentelemetry.proto.common.v1 import common_pb2 as _common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2 as _trace_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PartialStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPLETE: _ClassVar[PartialStatus]
    PARTIAL: _ClassVar[PartialStatus]
COMPLETE: PartialStatus
PARTIAL: PartialStatus

class Trace(_message.Message):
    __slots__ = ("resourceSpans",)
    RESOURCESPANS_FIELD_NUMBER: _ClassVar[int]
    resourceSpans: _containers.RepeatedCompositeFieldContainer[_trace_pb2.ResourceSpans]
    def __init__(self, resourceSpans: _Optional[_Iterable[_Union[_trace_pb2.ResourceSpans, _Mapping]]] = ...) -> None: ...

class TraceByIDMetrics(_message.Message):
    __slots__ = ("inspectedBytes",)
    INSPECTEDBYTES_FIELD_NUMBER: _ClassVar[int]
    inspectedBytes: int
    def __init__(self, inspectedBytes: _Optional[int] = ...) -> None: ...

class TraceByIDResponse(_message.Message):
    __slots__ = ("trace", "metrics", "status", "message")
    TRACE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    trace: Trace
    metrics: TraceByIDMetrics
    status: PartialStatus
    message: str
    def __init__(self, trace: _Optional[_Union[Trace, _Mapping]] = ..., metrics: _Optional[_Union[TraceByIDMetrics, _Mapping]] = ..., status: _Optional[_Union[PartialStatus, str]] = ..., message: _Optional[str] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("traces", "metrics")
    TRACES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    traces: _containers.RepeatedCompositeFieldContainer[TraceSearchMetadata]
    metrics: SearchMetrics
    def __init__(self, traces: _Optional[_Iterable[_Union[TraceSearchMetadata, _Mapping]]] = ..., metrics: _Optional[_Union[SearchMetrics, _Mapping]] = ...) -> None: ...

class TraceSearchMetadata(_message.Message):
    __slots__ = ("traceID", "rootServiceName", "rootTraceName", "startTimeUnixNano", "durationMs", "spanSet", "spanSets", "serviceStats")
    class ServiceStatsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ServiceStats
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ServiceStats, _Mapping]] = ...) -> None: ...
    TRACEID_FIELD_NUMBER: _ClassVar[int]
    ROOTSERVICENAME_FIELD_NUMBER: _ClassVar[int]
    ROOTTRACENAME_FIELD_NUMBER: _ClassVar[int]
    STARTTIMEUNIXNANO_FIELD_NUMBER: _ClassVar[int]
    DURATIONMS_FIELD_NUMBER: _ClassVar[int]
    SPANSET_FIELD_NUMBER: _ClassVar[int]
    SPANSETS_FIELD_NUMBER: _ClassVar[int]
    SERVICESTATS_FIELD_NUMBER: _ClassVar[int]
    traceID: str
    rootServiceName: str
    rootTraceName: str
    startTimeUnixNano: int
    durationMs: int
    spanSet: SpanSet
    spanSets: _containers.RepeatedCompositeFieldContainer[SpanSet]
    serviceStats: _containers.MessageMap[str, ServiceStats]
    def __init__(self, traceID: _Optional[str] = ..., rootServiceName: _Optional[str] = ..., rootTraceName: _Optional[str] = ..., startTimeUnixNano: _Optional[int] = ..., durationMs: _Optional[int] = ..., spanSet: _Optional[_Union[SpanSet, _Mapping]] = ..., spanSets: _Optional[_Iterable[_Union[SpanSet, _Mapping]]] = ..., serviceStats: _Optional[_Mapping[str, ServiceStats]] = ...) -> None: ...

class ServiceStats(_message.Message):
    __slots__ = ("spanCount", "errorCount")
    SPANCOUNT_FIELD_NUMBER: _ClassVar[int]
    ERRORCOUNT_FIELD_NUMBER: _ClassVar[int]
    spanCount: int
    errorCount: int
    def __init__(self, spanCount: _Optional[int] = ..., errorCount: _Optional[int] = ...) -> None: ...

class SpanSet(_message.Message):
    __slots__ = ("spans", "matched", "attributes")
    SPANS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    spans: _containers.RepeatedCompositeFieldContainer[Span]
    matched: int
    attributes: _containers.RepeatedCompositeFieldContainer[_common_pb2.KeyValue]
    def __init__(self, spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., matched: _Optional[int] = ..., attributes: _Optional[_Iterable[_Union[_common_pb2.KeyValue, _Mapping]]] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("spanID", "name", "startTimeUnixNano", "durationNanos", "attributes")
    SPANID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STARTTIMEUNIXNANO_FIELD_NUMBER: _ClassVar[int]
    DURATIONNANOS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    spanID: str
    name: str
    startTimeUnixNano: int
    durationNanos: int
    attributes: _containers.RepeatedCompositeFieldContainer[_common_pb2.KeyValue]
    def __init__(self, spanID: _Optional[str] = ..., name: _Optional[str] = ..., startTimeUnixNano: _Optional[int] = ..., durationNanos: _Optional[int] = ..., attributes: _Optional[_Iterable[_Union[_common_pb2.KeyValue, _Mapping]]] = ...) -> None: ...

class SearchMetrics(_message.Message):
    __slots__ = ("inspectedTraces", "inspectedBytes", "totalBlocks", "completedJobs", "totalJobs", "totalBlockBytes", "inspectedSpans")
    INSPECTEDTRACES_FIELD_NUMBER: _ClassVar[int]
    INSPECTEDBYTES_FIELD_NUMBER: _ClassVar[int]
    TOTALBLOCKS_FIELD_NUMBER: _ClassVar[int]
    COMPLETEDJOBS_FIELD_NUMBER: _ClassVar[int]
    TOTALJOBS_FIELD_NUMBER: _ClassVar[int]
    TOTALBLOCKBYTES_FIELD_NUMBER: _ClassVar[int]
    INSPECTEDSPANS_FIELD_NUMBER: _ClassVar[int]
    inspectedTraces: int
    inspectedBytes: int
    totalBlocks: int
    completedJobs: int
    totalJobs: int
    totalBlockBytes: int
    inspectedSpans: int
    def __init__(self, inspectedTraces: _Optional[int] = ..., inspectedBytes: _Optional[int] = ..., totalBlocks: _Optional[int] = ..., completedJobs: _Optional[int] = ..., totalJobs: _Optional[int] = ..., totalBlockBytes: _Optional[int] = ..., inspectedSpans: _Optional[int] = ...) -> None: ...

class MetadataMetrics(_message.Message):
    __slots__ = ("inspectedBytes", "totalJobs", "completedJobs")
    INSPECTEDBYTES_FIELD_NUMBER: _ClassVar[int]
    TOTALJOBS_FIELD_NUMBER: _ClassVar[int]
    COMPLETEDJOBS_FIELD_NUMBER: _ClassVar[int]
    inspectedBytes: int
    totalJobs: int
    completedJobs: int
    def __init__(self, inspectedBytes: _Optional[int] = ..., totalJobs: _Optional[int] = ..., completedJobs: _Optional[int] = ...) -> None: ...

class SearchTagsResponse(_message.Message):
    __slots__ = ("tagNames", "metrics")
    TAGNAMES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    tagNames: _containers.RepeatedScalarFieldContainer[str]
    metrics: MetadataMetrics
    def __init__(self, tagNames: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Union[MetadataMetrics, _Mapping]] = ...) -> None: ...

class SearchTagsV2Response(_message.Message):
    __slots__ = ("scopes", "metrics")
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    scopes: _containers.RepeatedCompositeFieldContainer[SearchTagsV2Scope]
    metrics: MetadataMetrics
    def __init__(self, scopes: _Optional[_Iterable[_Union[SearchTagsV2Scope, _Mapping]]] = ..., metrics: _Optional[_Union[MetadataMetrics, _Mapping]] = ...) -> None: ...

class SearchTagsV2Scope(_message.Message):
    __slots__ = ("name", "tags")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class SearchTagValuesResponse(_message.Message):
    __slots__ = ("tagValues", "metrics")
    TAGVALUES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    tagValues: _containers.RepeatedScalarFieldContainer[str]
    metrics: MetadataMetrics
    def __init__(self, tagValues: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Union[MetadataMetrics, _Mapping]] = ...) -> None: ...

class TagValue(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SearchTagValuesV2Response(_message.Message):
    __slots__ = ("tagValues", "metrics")
    TAGVALUES_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    tagValues: _containers.RepeatedCompositeFieldContainer[TagValue]
    metrics: MetadataMetrics
    def __init__(self, tagValues: _Optional[_Iterable[_Union[TagValue, _Mapping]]] = ..., metrics: _Optional[_Union[MetadataMetrics, _Mapping]] = ...) -> None: ...
