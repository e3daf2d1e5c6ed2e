"""Queries and business rules behind the routes (routes stay thin: parse, call one service, respond)."""
