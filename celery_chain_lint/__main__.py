from celery_chain_lint.cli import main

main()
