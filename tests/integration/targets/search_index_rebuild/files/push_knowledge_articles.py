# Copyright: sre.rollback contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stands in for the runbook's sync_knowledge_articles(full_sync=True): pushes the Salesforce
knowledge articles into the index named by AZURE_SEARCH_INDEX, as the push-model sync does.

Usage: push_knowledge_articles.py COUNT [--fail]
--fail exits 2 after pushing half, as a sync whose Salesforce token expired half-way.
"""

import os
import sys

from azure.core.credentials import AzureKeyCredential
from azure.search.documents import SearchClient

TOPICS = ["password reset", "opportunity sync", "case escalation", "lead import", "report export",
          "single sign-on", "mobile app login", "email-to-case"]


def main(argv):
    count = int(argv[1])
    fail = "--fail" in argv
    client = SearchClient(os.environ["AZURE_SEARCH_ENDPOINT"], os.environ["AZURE_SEARCH_INDEX"],
                          AzureKeyCredential(os.environ["AZURE_SEARCH_API_KEY"]))
    articles = [{"id": "ka-%04d" % n, "title": "KA-%04d %s" % (n, TOPICS[(n - 1) % len(TOPICS)]),
                 "content": "Knowledge article %d, synced from Salesforce." % n,
                 "category": TOPICS[(n - 1) % len(TOPICS)]} for n in range(1, count + 1)]
    if fail:
        client.upload_documents(articles[:count // 2])
        print("SalesforceAuthError: INVALID_SESSION_ID: Session expired or invalid", file=sys.stderr)
        return 2
    for start in range(0, len(articles), 50):
        client.upload_documents(articles[start:start + 50])
    print("pushed %d knowledge articles" % len(articles))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
