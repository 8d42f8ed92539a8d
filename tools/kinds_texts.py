"""The words of tools/make_kinds.py's labelled set: voicemail messages, held-vowel messages, greetings
and dialogues, written for it apart from the detectors in vmgrade/calls (never used to tune them).

Data only; tools/make_kinds.py imports it.
"""

MESSAGES = {  # str: spoken; float: a pause (s); tuple: (text, speed factor, espeak pitch 0-99, gain dB)
    "terse": ["Sam, Rita at Copperleaf. Renewal question. Call me back on five five five, three one two, "
        "eight eight four zero. Thanks."],
    "rambling": ["Hey Jordan, it's Mike, Mike Dunleavy, from Harbor Point Logistics. We met, well, I think "
        "we met, at the expo in March, or maybe it was the one in Tampa, anyway. I was calling because "
        "we've been doing a lot of work with outfits like yours on the cold chain side, trucks, reefers, "
        "the whole thing, and I figured, you know, worth a call. So if you've got a minute this week or "
        "next, or whenever really, give me a shout. I'm at five five five, four one seven, two two nine "
        "zero. Okay. Talk soon, hopefully."],
    "formal": ["Good morning, Mr. Patel. This is Eleanor Graves of Ashford Commercial Insurance. I am "
        "calling regarding your fleet policy, which renews on the thirtieth of next month. I would like to "
        "arrange a short review of the revised terms before that date. Please return my call at your "
        "convenience on five five five, six zero two, one one four eight. Thank you, and good day."],
    "nonnative": ["Hello, good day to you, this is Raj Malhotra calling from Vistaway Software. I am "
        "calling regarding of your request for the demo of our scheduling product last week. Kindly call "
        "me back when you are free, my number is five five five, eight eight one, three three zero six. I "
        "will be waiting for your kind response. Thank you so much."],
    "fillers": ["Um, hi, uh, this is, um, Kelsey, from, like, Brightpath Staffing? So, uh, I was, um, "
        "basically just calling to, like, see if you guys are, um, still hiring for the, uh, warehouse "
        "roles? And, um, yeah, we have, like, some really great people, so, um, you know, call me back? "
        "It's, uh, five five five, two zero eight, um, six one four one. Okay, um, thanks, bye."],
    "casual": ["Hiya Tom, it's Fiona over at Glenmore Print. Just a wee heads up, the proofs for the "
        "autumn brochure are ready and they look brilliant. If you can give me a ring before Thursday we "
        "can get them on the press Friday morning. Cheers, talk soon."],
    "followup": ["Hi Andre, this is Dev from Clearwater Analytics, following up on the quote I emailed you "
        "on Tuesday. The pricing holds until the end of the month. If it helps, I can walk your team "
        "through it in fifteen minutes. You can reach me at five five five, nine zero four, seven seven "
        "one two."],
    "numbers": ["Hello, this message is for Linda Okafor. My name is Gary Stone, from Premier Roofing, "
        "about the estimate for the warehouse on Fifth Street. The quote number is four four seven, two "
        "one nine. My direct line is five five five, three four four, one nine eight two, and my cell is "
        "five five five, three four four, six six zero one. Again, five five five, three four four, one "
        "nine eight two."],
    "paused_number": ["Hi Megan, it's Carlos from Summit Solar, calling about the site survey for your "
        "roof. We have two slots open next week.",
        3.2,
        ("Let me give you my number. Five. Five. Five. Two, one, seven. Four, four, zero, "
         "nine.", 0.6, 35, -2.0)],
    "paused_afterthought": ["Hey Chris, it's Jay at Northline Freight, just confirming we can take the "
        "Denver loads starting Monday. Give me a call when you can.",
        4.0,
        ("Oh, and sorry, one more thing. Bring the pallet counts if you have them.", 1.15, 75, -4.0)],
    "paused_slow": ["Good afternoon Ms. Reid, Alan Brodie here from Kelvin Surveyors.",
        2.6,
        ("I wanted to let you know the report on the mill building is finished.", 0.75, 30, -5.0),
        2.2,
        ("Call me on five five five, seven seven four, zero three one eight.", 0.7, 45, 0.0)],
}
VOWEL_MESSAGES = [  # (voice, lead words, rest, F0 start->end Hz, vowel s, formants (Hz, bandwidth Hz))
    ('espeak:en-us+f2', 'Hey Jordan,', "I was looking back at my notes from our call in May, and I think we "
        "can finally help with the routing problem. Call me on five five five, six one two, nine nine three "
        "zero.",
        (391.0, 344.0), 0.6, ((500.0, 80.0), (900.0, 100.0), (2600.0, 160.0))),
    ('espeak:en+f4', 'Hi, good morning,', "it's Nadia from Lumen Payroll. Quick one about moving your team "
        "onto the new plan. Ring me back on five five five, two two one, four zero seven seven when you get "
        "a minute.",
        (420.0, 370.0), 0.7, ((650.0, 90.0), (1100.0, 110.0))),
    ('piper:joe', 'Well hello,', "it's Brandon over at Keystone Security. I've got those camera quotes you "
        "asked about. Call me, five five five, eight three two, one one six five.",
        (330.0, 290.0), 0.55, ((750.0, 90.0), (1200.0, 120.0), (2500.0, 170.0))),
]
GREETINGS = {
    "dana": "Hey, it's Dana. Can't talk. You know what to do.",
    "jen_tommy": "Hi! You've got Jen and Tommy. We're probably chasing the kids around the yard. Talk soon, "
        "bye!",
    "pieter": "Hello, here is Pieter. I am not available in this moment. I call you back soon.",
    "missed": "Sorry I missed you. I'll get back to you as soon as I can.",
    "osei": "Good afternoon. You have reached the desk of Doctor Amara Osei. I am away from the office "
        "until the fourteenth. For urgent matters, please contact my assistant, Paul, on extension two two "
        "four.",
    "plumbing": "Thanks for calling Northfield Plumbing. Nobody's at the desk right now, we'll ring you "
        "back.",
    "halvorsen": "You've reached Halvorsen and Webb accountants. Our team is with clients this afternoon. "
        "Your call matters to us.",
    "crestline": "You have reached the sales line at Crestline Windows. At the tone, please record your "
        "message. When you have finished, you may hang up.",
    "dental_hours": "Thank you for calling Brookside Family Dental. Our office is now closed. Our hours are "
        "Monday through Thursday, eight a.m. to five p.m., and Friday, eight a.m. to noon. If this is a "
        "dental emergency, please call nine one one or go to the nearest emergency room.",
    "subscriber": "The subscriber you have dialled is unavailable. Please try again later.",
    "cannot_take": "The person you are calling cannot take your call at this time.",
    "mailbox_full": "The mailbox is full and cannot accept any messages at this time. Goodbye.",
    "forwarded": "Your call has been forwarded to an automated voice messaging system. Five five five, two "
        "one nine, four four zero eight, is not available.",
    "not_in_service": "We're sorry, the number you have reached is not in service. Please check the number "
        "and dial again.",
    "screen_record": "Please record your name and reason for calling, and I'll see if this person is "
        "available.",
    "screen_assistant": "Hi, the person you're calling is using a screening service and will get a copy of "
        "this conversation. Go ahead and say your name and why you're calling.",
}
DIALOGUES = {  # turns split at " / "; A is the agent or rep, B the customer or prospect, C a third party
    "scheduling": "A: Good morning, Comfort Air, this is Paula, how can I help? / B: Hi, yeah, our furnace "
        "is making a rattling noise and I'd like someone to take a look. / A: Sure, I can help with that. "
        "Can I get the address for the service call? / B: It's forty two Birch Lane, in Maple Grove. / A: "
        "Thanks. I have an opening Thursday between eight and ten, or Friday afternoon. / B: Thursday "
        "morning works better for me. / A: Great, Thursday, eight to ten. The technician will call about "
        "thirty minutes before arriving. / B: Perfect. Is there a charge just for the visit? / A: The "
        "diagnostic fee is eighty nine dollars, and it's waived if you go ahead with the repair. / B: Okay, "
        "that's fine. Thanks so much.",
    "support": "A: Thanks for calling Lakeshore Internet support, my name is Owen. What's going on today? / "
        "B: Our office internet has been dropping out every twenty minutes or so since yesterday. / A: I'm "
        "sorry about that. What lights do you see on the modem right now? / B: The power light is green, "
        "but the one marked online keeps blinking orange. / A: Okay. I'm running a line test from here, it "
        "takes about a minute. / B: Sure, no problem. / A: I can see a lot of signal errors on your line. "
        "I'm going to book a technician. / B: How soon can someone come out? We have clients calling all "
        "day. / A: The earliest is tomorrow at nine. I'll also send you a credit for the outage.",
    "sales": "A: Hi, is this Dana Whitfield? / B: Speaking. Who's this? / A: Dana, it's Marcus from "
        "Ridgeline Software. Did I catch you at a bad time? / B: I've got a couple of minutes. What's it "
        "about? / A: We help property managers cut the time they spend on maintenance requests. I saw you "
        "just opened a third building. / B: We did, yeah. Honestly, the requests are all over the place "
        "right now, email, texts, sticky notes. / A: That's exactly what we fix. Everything lands in one "
        "queue and tenants get updates automatically. / B: What does something like that cost? / A: It "
        "depends on the number of units. For three buildings, it's usually a few hundred a month. / B: "
        "Okay. Send me something in writing and I'll look at it this week.",
    "renewal": "A: Hi Greg, it's Laura from Summit Supply, thanks for picking up. / B: Hi Laura. I figured "
        "you'd call, the contract's up at the end of the month, right? / A: That's right. I wanted to go "
        "over the renewal before the paperwork goes out. / B: Sure. I'll be honest, we've had a couple of "
        "late deliveries this quarter. / A: I know, and I'm sorry about those. Both were the weather "
        "closure at the Reno depot. / B: I understand, but my crew sat around for half a day the second "
        "time. / A: That's fair. For the renewal we can add a guaranteed delivery window, with a credit if "
        "we miss it. / B: What kind of credit are we talking about? / A: Five percent of the order value "
        "for any delivery more than two hours late. / B: That would help. What about pricing? Everything "
        "else has gone up this year. / A: We're holding your current prices for twelve months if you renew "
        "for two years. / B: Two years is a long commitment. What if our volume drops? / A: There's no "
        "minimum order in the new contract, so you wouldn't be penalised. / B: Okay, that's better than "
        "last time. Can you send me the draft today? / A: I'll email it this afternoon, with the delivery "
        "credit written in. / B: Great. I'll run it past our finance director and get back to you by Friday.",
    "three_way": "A: Hi Priya, thanks for taking the call. Sam from our onboarding team is joining too. / "
        "C: Hi both, Sam here, sorry I'm a minute late. / B: No worries. So, we're mostly worried about "
        "moving the old records over. / C: That's the part I handle. How many years of records are we "
        "talking about? / B: About seven years, maybe forty thousand files. / C: That's very doable. We "
        "usually move that in a weekend. / A: And Priya, we'd run both systems side by side for the first "
        "two weeks. / B: That makes me feel a lot better. What do you need from us to get started? / C: "
        "Just an export from your current system and a contact in your IT team. / A: I'll send a summary "
        "after this call with the next steps.",
    "callback": "A: Hello, is this Mr. Alvarez? / B: Yes, but I'm driving right now, can you call me back "
        "later? / A: Of course. Would after four today work? / B: Make it after five. I'll be back in the "
        "office by then. / A: After five it is. It's Jenna from Harbor Bank, about your business account. / "
        "B: Okay, got it. Talk to you then. / A: Thanks, drive safe. Bye now.",
}
# ---- which file gets what ----
