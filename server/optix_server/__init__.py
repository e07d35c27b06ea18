"""OPTIX server: the asyncio gRPC services and their shared infrastructure."""
