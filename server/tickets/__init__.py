"""Findings and anomalies as GitHub, GitLab and Jira tickets, and webhooks."""
