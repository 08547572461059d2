/*
 * Writes distsync(1), distsync.conf(5) and the bash completion from the
 * tables of src/cli/help.c, src/cli/help_conf.c and the parser's key list
 * (ds_config_key_at). Run by CMake at build time:
 *   gen_doc man1|man5|bash > FILE
 * Fails (exit 1, naming the key) when the parser accepts a key that
 * help_conf.c does not describe, so no key goes undocumented.
 */
#include <stdio.h>
#include <string.h>

#include "distsync/config.h"
#include "distsync/version.h"
#include "help.h"

/* Prints s with roff's special characters escaped. */
static void roff(const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", stdout);
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
    }
}

static void opt_tp(const struct help_opt *o)
{
    fputs(".TP\n", stdout);
    if (o->shrt)
        printf("\\fB\\-%c\\fR, ", o->shrt);
    fputs("\\fB\\-\\-", stdout);
    roff(o->lng);
    fputs("\\fR", stdout);
    if (o->arg) {
        fputs(o->arg[0] == '[' ? "" : " ", stdout);
        fputs("\\fI", stdout);
        roff(o->arg);
        fputs("\\fR", stdout);
    }
    putchar('\n');
    roff(o->desc);
    putchar('\n');
}

static int man1(void)
{
    printf(".TH DISTSYNC 1 \"\" \"distsync %s\" \"User Commands\"\n", ds_version());
    puts(".SH NAME\ndistsync \\- sync content from a console to distribution servers");
    puts(".SH SYNOPSIS\n\\fBdistsync\\fR [\\fB\\-c\\fR \\fIFILE\\fR] [\\fB\\-q\\fR] "
         "[\\fB\\-v\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]\n.br\n\\fBdistsync\\fR "
         "\\fB\\-\\-version\\fR | \\fB\\-\\-help\\fR");
    puts(".SH DESCRIPTION\ndistsync keeps distribution servers in step with a content store, "
         "sending only what changed. The configuration is described in "
         "\\fBdistsync.conf\\fR(5).");
    puts(".SH GLOBAL OPTIONS");
    for (const struct help_opt *o = help_global; o->lng; o++)
        opt_tp(o);
    puts(".SH COMMANDS");
    for (const struct help_cmd *c = help_cmds; c->name; c++) {
        if (c->hidden)
            continue;
        printf(".SS \\fB%s\\fR ", c->name);
        roff(c->synopsis);
        fputs("\n", stdout);
        roff(c->text);
        fputs("\n.RS\n", stdout);
        for (const struct help_opt *o = c->opts; o->lng; o++)
            opt_tp(o);
        puts(".RE");
    }
    puts(".SH EXIT STATUS\nWhen several servers end differently, the first of 4, 5, 3, 25, 6 "
         "that applies is returned.");
    for (const struct help_exit *e = help_exits; e->code >= 0; e++) {
        printf(".TP\n.B %d\n", e->code);
        roff(e->meaning);
        putchar('\n');
    }
    puts(".SH SIGNALS");
    for (const struct help_signal *s = help_signals; s->name; s++) {
        printf(".TP\n.B %s\n", s->name);
        roff(s->meaning);
        putchar('\n');
    }
    puts(".SH ENVIRONMENT\n.TP\n.B DISTSYNC_CONFIG\nthe configuration file when "
         "\\fB\\-c\\fR is not given");
    puts(".SH FILES\nThe configuration is the first of: \\fB\\-c\\fR \\fIFILE\\fR, "
         "\\fB$DISTSYNC_CONFIG\\fR, \\fI./distsync.conf\\fR, "
         "\\fI/etc/distsync/distsync.conf\\fR (with none, every command exits 2 naming all "
         "four). The state directory (\\fBstate =\\fR) holds the catalog, the retain store "
         "and the delta cache; see \\fBdistsync.conf\\fR(5).");
    puts(".SH HTTP API\n\\fBdistsync daemon\\fR serves HTTP/JSON under \\fI/v1/\\fR on "
         "the Unix socket \\fISTATE/distsync.sock\\fR (mode 0660), and over TCP on "
         "\\fB[console] listen =\\fR with the bearer token of \\fBapi_token_file =\\fR "
         "(401 without it; TLS with \\fBapi_tls_cert\\fR and \\fBapi_tls_key\\fR):\n.nf\n"
         "GET  /v1/servers            servers, frozen, last run, file status report\n"
         "GET  /v1/sites              caps in effect now\n"
         "GET  /v1/schedules          next and last fire\n"
         "GET  /v1/schedules/[NAME/]preview?count=N&from=TIME\n"
         "GET  /v1/runs[?live=1]      runs with progress; /v1/runs/ID\n"
         "GET  /v1/history?servers=A,B&limit=N&events=1\n"
         "POST /v1/run-now            {\"servers\":[...],\"sites\":[...],\"classes\":[...]}\n"
         "POST /v1/runs/ID/cancel\n"
         "POST /v1/freeze, /v1/thaw   {\"servers\",\"sites\",\"until\",\"reason\"}\n"
         "POST /v1/reload\n"
         "GET  /                      the web status page (its API calls need the token)\n.fi\n"
         "A bad request gets a 4xx {\"error\": \"...\"} and changes nothing. While the daemon "
         "runs, \\fBsync\\fR, \\fBfreeze\\fR, \\fBthaw\\fR, \\fBhistory\\fR and \\fBschedule "
         "next\\fR go "
         "through it; \\fBruns\\fR and \\fBcancel\\fR need it. See the README.");
    puts(".SH SEE ALSO\n\\fBdistsync.conf\\fR(5)");
    return 0;
}

static int man5(void)
{
    const char *sect, *key, *last = "";
    int missing = 0;

    printf(".TH DISTSYNC.CONF 5 \"\" \"distsync %s\" \"File Formats\"\n", ds_version());
    puts(".SH NAME\ndistsync.conf \\- distsync configuration file");
    puts(".SH DESCRIPTION\nINI syntax: \\fB[section]\\fR headers, \\fIkey\\fR = \\fIvalue\\fR "
         "lines, comments on their own line starting with # or ;. Sections: "
         "\\fB[console]\\fR (once), \\fB[site\\fR \\fINAME\\fR\\fB]\\fR, "
         "\\fB[server\\fR \\fINAME\\fR\\fB]\\fR, \\fB[schedule\\fR \\fINAME\\fR\\fB]\\fR. "
         "Unknown sections, unknown keys and duplicates are errors naming the file, line, "
         "section and key. Check a file with \\fBdistsync \\-c\\fR \\fIFILE\\fR "
         "\\fBconfig check\\fR.");
    for (size_t i = 0; ds_config_key_at(i, &sect, &key) == 0; i++) {
        const struct help_key *k = help_key_find(sect, key);

        if (k == NULL) {
            fprintf(stderr,
                    "gen_doc: key '%s' of [%s] has no description in "
                    "src/cli/help_conf.c\n",
                    key, sect);
            missing++;
            continue;
        }
        if (strcmp(sect, last) != 0)
            printf(".SH [%s]\n", sect);
        last = sect;
        printf(".TP\n\\fB%s\\fR = \\fI", key);
        roff(k->value);
        fputs("\\fR\n", stdout);
        roff(k->desc);
        putchar('\n');
    }
    puts(".SH FILES\nAn annotated example is installed as "
         "\\fIshare/doc/distsync/distsync.conf\\fR.");
    puts(".SH SEE ALSO\n\\fBdistsync\\fR(1)");
    return missing ? 1 : 0;
}

static void words(const struct help_opt *o)
{
    for (; o->lng; o++) {
        printf(" --%s", o->lng);
        if (o->shrt)
            printf(" -%c", o->shrt);
    }
}

/* One completion branch: the names `distsync complete WHAT` prints. */
static void complete_names(const char *branch, const char *what)
{
    printf("        %s\n            COMPREPLY=($(compgen -W \"$(distsync \"${conf[@]}\" "
           "complete %s 2>/dev/null)\" -- \"$cur\"))\n",
           branch, what);
}

static int bash(void)
{
    puts("# bash completion for distsync; generated by doc/gen_doc.c from src/cli/help.c");
    puts("_distsync()\n{\n    local cur prev cmd i conf=()\n    COMPREPLY=()\n"
         "    cur=${COMP_WORDS[COMP_CWORD]}\n    prev=${COMP_WORDS[COMP_CWORD-1]}");
    puts("    for ((i = 1; i < COMP_CWORD; i++)); do\n        case ${COMP_WORDS[i]} in\n"
         "        -c|--config) conf=(-c \"${COMP_WORDS[i+1]}\"); i=$((i + 1)) ;;\n"
         "        -*) ;;\n        *) cmd=${COMP_WORDS[i]}; break ;;\n        esac\n    done");
    puts("    case $prev in\n    -c|--config|--root|--chunks|--out|--since-manifest|--import) "
         "COMPREPLY=($(compgen -f -- "
         "\"$cur\")); return ;;\n    esac");
    fputs("    if [ -z \"$cmd\" ]; then\n        COMPREPLY=($(compgen -W \"", stdout);
    for (const struct help_cmd *c = help_cmds; c->name; c++)
        if (!c->hidden)
            printf("%s ", c->name);
    words(help_global);
    puts("\" -- \"$cur\"))\n        return\n    fi\n    case $cmd in");
    for (const struct help_cmd *c = help_cmds; c->name; c++) {
        /* the commands that select servers (SERVER..., --site, --class) */
        int select = !strcmp(c->name, "plan") || !strcmp(c->name, "sync") ||
                     !strcmp(c->name, "status") || !strcmp(c->name, "verify") ||
                     !strcmp(c->name, "history");

        if (c->hidden)
            continue;
        printf("    %s)\n        if [[ $cur == -* ]]; then\n            COMPREPLY=($(compgen -W \"",
               c->name);
        words(c->opts);
        printf("\" -- \"$cur\"))\n");
        if (select)
            complete_names("elif [ \"$prev\" = --site ]; then", "sites");
        if (select && strcmp(c->name, "history") != 0) /* a run covers every class */
            complete_names("elif [ \"$prev\" = --class ]; then", "classes");
        if (select || !strcmp(c->name, "trust") || !strcmp(c->name, "export"))
            complete_names("else", "servers");
        /* import-manifest SERVER FILE: the server, then a file */
        if (!strcmp(c->name, "import-manifest"))
            complete_names("elif [ \"$prev\" = import-manifest ]; then", "servers");
        if (!strcmp(c->name, "restore") || !strcmp(c->name, "import-manifest"))
            puts("        else\n            COMPREPLY=($(compgen -f -- \"$cur\"))");
        if (!strcmp(c->name, "rollout")) { /* ACTION, then the rollout's name */
            puts("        elif [ \"$prev\" = rollout ]; then\n            COMPREPLY=($(compgen -W "
                 "\"list status pause resume promote\" -- \"$cur\"))");
            complete_names("else", "rollouts");
        }
        if (!strcmp(c->name, "help")) {
            fputs("        else\n            COMPREPLY=($(compgen -W \"", stdout);
            for (const struct help_cmd *h = help_cmds; h->name; h++)
                if (!h->hidden)
                    printf("%s ", h->name);
            puts("\" -- \"$cur\"))");
        }
        puts("        fi ;;");
    }
    puts("    esac\n}\ncomplete -F _distsync distsync");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "man1") == 0)
        return man1();
    if (argc == 2 && strcmp(argv[1], "man5") == 0)
        return man5();
    if (argc == 2 && strcmp(argv[1], "bash") == 0)
        return bash();
    fprintf(stderr, "usage: gen_doc man1|man5|bash\n");
    return 2;
}
