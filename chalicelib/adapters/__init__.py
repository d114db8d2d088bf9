"""AWS implementations of the ports. Each takes its boto3 client as an argument."""
