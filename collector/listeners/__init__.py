"""What every network listener shares, HTTP or gRPC: its limits, the bytes it may hold, its descriptors, its counters.

The HTTP server that applies these limits is ``collector.httpserver``; the OTLP
gRPC receiver applies the gRPC ones (``collector.receivers.otlp.grpc``).
"""
