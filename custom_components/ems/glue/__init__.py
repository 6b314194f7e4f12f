"""TODO glue"""
