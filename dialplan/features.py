"""features_hotline.conf: transfer feature codes and the attended-transfer behaviour the engine relies on.

It holds complete [general] and [featuremap] sections: include it from features.conf and do not define those
sections again there (Asterisk would read both; the later value of a key wins).
"""
from __future__ import annotations

from dialplan.common import header, join_lines
from dialplan.conftext import Section, document
from dialplan.facts import Facts
from dialplan.options import RenderOptions

FILENAME = "features_hotline.conf"
ATXFER_CODE = "*2"


def render_features(facts: Facts, options: RenderOptions) -> str:
    head = header(FILENAME, facts.table, "Transfer features for warm (attended) and three-way transfers. "
                  "Include it from features.conf.")
    general = Section("general")
    general.note("The transfer target must answer within the longest no_answer_seconds of the table's")
    general.note("attended/three-way transfers; each transfer leg also dials with its own rule's limit.")
    general.set("atxfernoanswertimeout", facts.atxfer_no_answer_seconds())
    general.note("If the agent already hung up and the target does not answer, call the agent back (the")
    general.note("caller returns to the agent) instead of handing the ringing target to the caller.")
    general.set("atxferdropcall", "no")
    general.set("atxferloopdelay", 10)
    general.set("atxfercallbackretries", 2)
    general.set("transferdigittimeout", 3)
    general.note("During an attended transfer: *1 abort (back to the caller), *2 complete, *3 three-way, *4 swap.")
    general.set("atxferabort", "*1")
    general.set("atxfercomplete", "*2")
    general.set("atxferthreeway", "*3")
    general.set("atxferswap", "*4")
    featuremap = Section("featuremap")
    featuremap.note("AMI Atxfer plays this code then the target digits as DTMF on the agent's channel.")
    featuremap.set("atxfer", ATXFER_CODE)
    featuremap.set("blindxfer", "#1")
    return join_lines(document(head, [general, featuremap]))
