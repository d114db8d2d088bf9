"""The embedded local cloud: LocalStack on the host, Lambda functions as local processes.

`bash localcloud/run start|stop|status|logs|install` drives it; tests use
`localcloud.testing.ensure_local_cloud`. Importing this package starts nothing.
"""
