#!/bin/sh
# Builds and changes the test repositories of the git_revert target with the real git CLI.
#   repos.sh init DIR       DIR/origin.git (bare) and DIR/clone: main = good 1, good 2, bad
#   repos.sh merge DIR      a feature branch merged into main with --no-ff (prints the merge sha)
#   repos.sh conflict DIR   a config change and a later edit of the same line (prints the first sha)
#   repos.sh another DIR    one more bad commit on main (prints its sha)
#   repos.sh protect BARE   a pre-receive hook in BARE that refuses every push to main
#   repos.sh unprotect BARE
#   repos.sh state DIR      what the clone and origin look like, to compare before and after
set -eu
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=Developer GIT_AUTHOR_EMAIL=dev@example.com
export GIT_COMMITTER_NAME=Developer GIT_COMMITTER_EMAIL=dev@example.com
cmd=$1 dir=$2
commit() { # file text message
  printf '%s\n' "$2" > "$dir/work/$1"
  git -C "$dir/work" add "$1"
  git -C "$dir/work" commit -q -m "$3"
}
push() { git -C "$dir/work" push -q origin HEAD:main; }
case $cmd in
  init)
    git init -q --bare -b main "$dir/origin.git"
    git init -q -b main "$dir/work"
    git -C "$dir/work" remote add origin "$dir/origin.git"
    commit app.txt "version 1" "good: version 1"
    commit README.md "readme" "good: readme"
    commit app.txt "version 2 (bad)" "bad: version 2"
    push
    git clone -q "$dir/origin.git" "$dir/clone"
    ;;
  merge)
    git -C "$dir/work" pull -q --ff-only origin main
    git -C "$dir/work" checkout -q -b feature
    commit feature.txt "feature" "feature: new flag"
    git -C "$dir/work" checkout -q main
    git -C "$dir/work" merge -q --no-ff -m "Merge branch 'feature'" feature
    push
    git -C "$dir/work" rev-parse HEAD
    ;;
  conflict)
    git -C "$dir/work" pull -q --ff-only origin main
    commit config.txt "timeout=30" "config: timeout 30"
    first=$(git -C "$dir/work" rev-parse HEAD)
    commit config.txt "timeout=60" "config: timeout 60"
    push
    git -C "$dir/clone" pull -q --ff-only origin main
    echo "$first"
    ;;
  another)
    git -C "$dir/work" pull -q --ff-only origin main
    commit app.txt "version 3 (bad)" "bad: version 3"
    push
    git -C "$dir/work" rev-parse HEAD
    ;;
  protect)
    cat > "$dir/hooks/pre-receive" <<'HOOK'
#!/bin/sh
# Test hook: main is protected, like a GitHub branch protection rule.
while read -r old new ref; do
  if [ "$ref" = refs/heads/main ]; then
    echo "GH006: Protected branch update failed for refs/heads/main." >&2
    exit 1
  fi
done
exit 0
HOOK
    chmod +x "$dir/hooks/pre-receive"
    ;;
  unprotect)
    rm -f "$dir/hooks/pre-receive"
    ;;
  state)
    echo "origin: $(git -C "$dir/origin.git" for-each-ref --format='%(refname)=%(objectname)' | tr '\n' ' ')"
    echo "head: $(git -C "$dir/clone" rev-parse HEAD) $(git -C "$dir/clone" symbolic-ref -q HEAD || echo detached)"
    echo "refs: $(git -C "$dir/clone" for-each-ref --format='%(refname)=%(objectname)' | tr '\n' ' ')"
    echo "status: $(git -C "$dir/clone" status --porcelain --untracked-files=all | tr '\n' ' ')"
    echo "worktrees: $(git -C "$dir/clone" worktree list --porcelain | grep -c '^worktree')"
    ;;
  *)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
